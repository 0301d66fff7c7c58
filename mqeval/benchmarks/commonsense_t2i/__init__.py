"""CommonsenseT2I (zeyofu/Commonsense-T2I): adversarial prompt pairs judged per description."""
