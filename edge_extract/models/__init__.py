"""Known models: what a model is (manifest), where models are found (registry), how one gets here (install).

Above the runtime: installing checks a GGUF with it, and the runtime knows nothing of manifests.
"""
