"""FID benchmarks: MJHQ-30K (overall and per category) and COCO-30K, scored as MetaQuery scores them."""
