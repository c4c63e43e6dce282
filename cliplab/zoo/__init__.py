"""Getting and measuring models: `cliplab models pull` (download into the Hugging Face cache, verify,
export ONNX once) and the installed-models table with `models bench` figures. Above `runtime/`
(it exports and times towers), below the faces."""
