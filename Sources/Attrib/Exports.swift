// The umbrella library: everything a user of the engine needs, one import.
@_exported import AttribCore
@_exported import AttribOpenCL
@_exported import AttribModels
@_exported import AttribMethods
@_exported import AttribONNX
