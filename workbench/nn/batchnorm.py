"""BatchNormalization trained with TensorFlow's fused kernel.

Keras 3's BatchNormalization normalises with separate ops on every backend (``ops.moments``, then the scale and
shift) and TensorFlow differentiates through each of them; tf_keras called ``FusedBatchNormV3``, one kernel forward
and one backward, several times faster on this project's CPU (bench/train_speed.py fits MobileNet both ways side by side);
MobileNet v1 has 27 BatchNorm layers, and its float fit ran at 0.77x tf_keras' pace per image. This subclass keeps Keras' layer (its weights, config, inference path and
class name, so every ``type(layer).__name__ == "BatchNormalization"`` check holds) and trains through the fused
kernel where it applies: TensorFlow backend, 4-D channels-last float32 inputs, no mask, renorm or synchronisation.
The outputs, gradients and moving statistics equal Keras' own to float rounding (tests/test_layers.py).
"""

from __future__ import annotations

import keras

MIN_FUSED_EPSILON = 1.001e-5  # FusedBatchNormV3 refuses a smaller epsilon


@keras.saving.register_keras_serializable(package="workbench", name="BatchNormalization")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` whose training step runs TensorFlow's fused kernel where it can."""

    def fused(self, inputs, mask=None) -> bool:
        """Whether a training call on ``inputs`` takes the fused kernel."""
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and len(inputs.shape) == 4 and self.axis in (-1, 3, [3], [-1])
                and keras.backend.standardize_dtype(inputs.dtype) == "float32"
                and self.compute_dtype == "float32" and self.epsilon >= MIN_FUSED_EPSILON)

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self.fused(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,), tf.float32)
        beta = self.beta if self.center else tf.zeros((channels,), tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the batch variance with Bessel's correction; Keras' layer moves its statistics
        # towards the biased one (the variance it normalises with).
        count = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = variance * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def with_fused_batchnorm(model: keras.Model, fused: bool = True) -> keras.Model:
    """A copy of ``model`` whose BatchNormalization layers are this module's (``fused=False``: Keras' own, e.g.
    for a file to be loaded without the workbench), with the same configs and weights."""
    source, target = ((keras.layers.BatchNormalization, BatchNormalization) if fused
                      else (BatchNormalization, keras.layers.BatchNormalization))

    def clone(layer):
        cls = target if type(layer) is source else layer.__class__
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy
