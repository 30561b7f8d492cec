"""Teaching panels: the accordions under a tab that open up one step of a model.

Each panel is split by layer: ``<panel>_math`` holds the arithmetic as pure functions, tested
against the library that computes it; ``<panel>_drawing`` turns their results into images and
text; ``<panel>_panel`` wires the widgets and asks ``models`` for the network's internals.
"""
