"""How a model runs: runners on the dynamic graph, Paddle Inference and ONNX Runtime (:mod:`.backends`), export,
int8 quantization (:mod:`.quantize`), batches through a runner (:mod:`.batches`), process groups and collectives
(:mod:`.parallel`) and the sharded, resumable part files of eval/predict (:mod:`.records`).

Imports no ``apps``, ``training`` or ``serving`` module."""
