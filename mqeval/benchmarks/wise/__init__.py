"""WISE (PKU-YuanGroup/WISE): legacy GPT-4o protocol and WISE-Verified."""
