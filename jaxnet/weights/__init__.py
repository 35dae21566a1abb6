"""Weights in and out: torchvision (and timm ResNet) state dicts <-> jaxnet variables.

    variables = jaxnet.weights.from_torchvision(state_dict, "resnet50")   # tensors or numpy arrays
    logits = create_model("resnet50", num_classes=1000).apply(variables, images_nhwc, train=False)
    state_dict = jaxnet.weights.to_torchvision(variables, "resnet50")     # numpy arrays

Covered (jaxnet name <- torchvision constructor): resnet18..resnet152 <- resnet18..resnet152
(timm's plain resnet18..152 too: same keys), alexnet_onegpu <- alexnet, googlenet_bn <- googlenet
(pretrained googlenet weights need create_model("googlenet_bn", ..., transform_input=True)).
Files: `import_file(path, model_name)` / `export_file(variables, model_name, path)`;
CLI: `python -m jaxnet weights import|export|verify|manifests` (see __main__.py).
"""
from jaxnet.weights.files import (FORMATS, export_file, import_file, load_state_dict,
                                  load_variables, save_state_dict, save_variables)
from jaxnet.weights.torchvision import SUPPORTED, TORCHVISION_NAMES, from_torchvision, to_torchvision

__all__ = ["from_torchvision", "to_torchvision", "import_file", "export_file", "load_state_dict",
           "save_state_dict", "load_variables", "save_variables", "SUPPORTED", "TORCHVISION_NAMES",
           "FORMATS"]
