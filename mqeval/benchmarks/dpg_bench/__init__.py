"""DPG-Bench (TencentQQGYLab/ELLA): dense prompts scored by yes/no VQA with dependency gating."""
