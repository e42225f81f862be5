"""Model builders and scaffolds for the models a lab does NOT ask students to write.

One architecture per file; builders are typed and keyword-only and return modules whose forward
returns logits (detection keeps torchvision's list of dicts).
"""
