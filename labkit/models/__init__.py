"""Model builders and scaffolds for the models a lab does NOT ask students to write.

One architecture per file; builders are typed and keyword-only and return modules whose forward
returns logits (detection keeps torchvision's list of dicts):

* ``resnet``: ResNet-18 for CIFAR and the stem used by the hybrid ViT (lab 06);
* ``hybrid``: the ResNet-ViT hybrid (lab 06); ``hourglass``: stacked hourglass (lab 02);
* ``segformer``: the SegFormer scaffold around the students' parts, Hugging Face weight mapping
  (lab 03);
* ``fcn`` and ``segformer_hf``: torchvision FCN-ResNet50 and Hugging Face SegFormer with
  ``.encoder``/``.head`` and checkpoints from :mod:`labkit.weights` (lab 04);
* ``cityscapes``: pretrained Cityscapes segmenters behind one interface (lab 05);
* ``detection``: Faster R-CNN skeletons with torchvision's keys and a tiny CPU detector (lab 07).
"""
