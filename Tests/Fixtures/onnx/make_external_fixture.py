"""Tests/Fixtures/onnx/external: the resmlp fixture's model.onnx re-saved with every initializer
in an external file (weights.bin), as onnx.save(save_as_external_data=True) writes models over
2 GB; the test holds it to resmlp's own references.

Run: python make_external_fixture.py   (onnx)
"""
import os
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(HERE, "external")
os.makedirs(out, exist_ok=True)
m = onnx.load(os.path.join(HERE, "resmlp", "model.onnx"))
onnx.save_model(m, os.path.join(out, "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                location="weights.bin", size_threshold=0)
ext = sum(1 for t in onnx.load(os.path.join(out, "model.onnx"), load_external_data=False).graph.initializer
          if t.data_location == onnx.TensorProto.EXTERNAL)
print("wrote", out, "with", ext, "external initializers;", os.path.getsize(os.path.join(out, "weights.bin")), "bytes of data")
