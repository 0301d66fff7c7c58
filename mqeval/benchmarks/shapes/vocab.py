"""The shapes world's vocabulary: shape names, named colours, and how they are written in prompts."""
from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond")

# Saturated, well separated colours named like GenEval's colour classes; RGB 0-255.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 210, 40),
    "green": (40, 160, 60),
    "blue": (40, 80, 220),
    "purple": (140, 60, 190),
}
BACKGROUND: tuple[int, int, int] = (235, 235, 235)

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def plural(shape: str) -> str:
    return shape + "s"


def noun_phrase(shape: str, color: str | None = None, count: int = 1) -> str:
    """'a circle', 'an orange square', 'three triangles', 'two red circles'."""
    words = f"{color} {shape}" if color else shape
    if count == 1:
        return f"{article(words)} {words}"
    return f"{NUMBER_WORDS[count]} {color + ' ' if color else ''}{plural(shape)}"
