"""Models written in gtdsl, with Hugging Face weights: ``gtdsl.models.bert``."""
