// Layers, models and their file formats.
