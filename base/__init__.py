"""The base layer: image types, decoding and checks, boxes, the lazy model holder, plug-in lookup.

Every other package may import it; it imports none of them.
"""
