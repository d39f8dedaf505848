"""Keras plumbing shared by pruning and quantization: weight-layer forward passes and graph walks."""
