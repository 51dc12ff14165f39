"""Pretraining: a BERT-style encoder trained from scratch by masked-language modelling on a text data
set's training and validation texts (never its test rows) and unlabelled files, registered in MLflow
as `<name>-encoder` for `mlpipe run --models pretrained --backbone models:/<name>-encoder/<version>`."""
