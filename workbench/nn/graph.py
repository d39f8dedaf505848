"""Walk a built Sequential or functional Keras model as a graph of layers (by name)."""

from __future__ import annotations

import keras

from workbench.errors import ModelError


def functional_view(model: keras.Model) -> keras.Model:
    """The functional graph behind a model (a Sequential builds one internally)."""
    if isinstance(model, keras.Sequential):
        inner = getattr(model, "_functional", None)
        if inner is None:
            raise ModelError(f"Sequential model {model.name!r} is not built; give it an Input first.")
        return inner
    if not hasattr(model, "_operations") and not hasattr(model, "layers"):
        raise ModelError(f"Expected a Keras Sequential or functional model. Received: {type(model).__name__}")
    return model


def edges(model: keras.Model) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(producers, consumers): for each layer name, the layers feeding it and the layers it feeds."""
    graph = functional_view(model)
    names = {id(layer): layer.name for layer in graph.layers}
    producers: dict[str, list[str]] = {layer.name: [] for layer in graph.layers}
    consumers: dict[str, list[str]] = {layer.name: [] for layer in graph.layers}
    keys = getattr(graph, "_nodes", None)
    for layer in graph.layers:
        if keys is not None:  # nodes of the current graph only (a Sequential may have been rebuilt)
            nodes = [n for i, n in enumerate(layer._inbound_nodes) if f"{id(layer)}_ib-{i}" in keys]
        else:
            nodes = [n for n in layer._inbound_nodes if _node_in_model(n, names)]
        if len(nodes) > 1:
            raise ModelError(f"Layer {layer.name!r} is called {len(nodes)} times (a shared layer); "
                             "shared layers are not supported.")
        for node in nodes:
            for tensor in node.input_tensors:
                op = tensor._keras_history.operation
                if id(op) in names:
                    producers[layer.name].append(names[id(op)])
                    consumers[names[id(op)]].append(layer.name)
    return producers, consumers


def _node_in_model(node, names) -> bool:
    return all(id(t._keras_history.operation) in names for t in node.input_tensors) if node.input_tensors else True


def sole_consumer(consumers: dict[str, list[str]], name: str) -> str | None:
    found = consumers.get(name, [])
    return found[0] if len(found) == 1 else None
