"""The aecluster method: its card (card.py, what a sweep's driver reads) and its model (model.py, imports torch)."""
