"""An exact, analytic detector for the shapes world: no learned weights.

1. Background: the median colour of the image border.
2. Each pixel is explained as a blend of the background and one palette colour: alpha = projection of
   (pixel - background) on (colour - background), residual = distance to that blend. The best-explaining colour
   labels the pixel; it is foreground when that colour's alpha >= min_alpha. Blending is why anti-aliased or
   blurred edges keep the object's colour instead of drifting to a neighbouring palette colour.
3. Connected components of the foreground (8-connected), holes filled; a component whose pixels mostly carry one
   colour is one object of that colour; one with several large colour shares is split by colour (touching
   objects). The object's colour is the detection's colour.
4. Shape: the object's soft alpha (around its pixels, noise below a dead zone removed) is fitted by every shape's
   analytic template (square box, centred by the centroid, sized by the mass, blurred by a Gaussian; side and
   blur refined on a small grid) and compared by soft IoU. The best template gives label and box; the score
   combines how well it fits with how clearly it beats the runner-up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from mqeval.benchmarks.shapes.vocab import COLORS, SHAPES
from mqeval.benchmarks.shapes.world import coverage
from mqeval.contract.detection import Detection


@dataclass(frozen=True)
class DetectorConfig:
    min_alpha: float = 0.5  # a pixel is an object pixel when it is at least half object colour
    max_residual: float = 70.0  # RGB distance from the background-to-colour blend line
    min_area_fraction: float = 0.003  # smaller components are noise (fraction of the image area)
    min_area_px: int = 6
    split_share: float = 0.25  # a colour with at least this share of a component makes it split by colour
    pad_px: int = 3  # the soft alpha of an object is read this far around its pixels (anti-aliased edges)
    # Score = fit x clarity. fit: the best template's soft IoU mapped linearly from iou_zero (0) to iou_full (1).
    # clarity: misfit ratio r = (1 - best IoU) / (1 - runner-up IoU), 1 when r <= clear_ratio, 0 when r = 1.
    # Calibrated on drawn scenes at 32/64 px with Gaussian blur up to 1 px (at 64 px) and noise up to 12/255:
    # the right template's IoU stays above 0.9 and r below 0.6 (95th percentiles); wrong templates stay < 0.86.
    iou_zero: float = 0.6
    iou_full: float = 0.9
    clear_ratio: float = 0.6


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = np.asarray(image.convert("RGB"))
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {arr.shape}")
    return arr


def background_color(arr: np.ndarray) -> np.ndarray:
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    return np.median(border, axis=0)


def color_labels(arr: np.ndarray, config: DetectorConfig = DetectorConfig()) -> tuple[np.ndarray, list[str]]:
    """Per pixel: index into the returned colour names, or -1 for background.

    The colour is the one whose background blend explains the pixel best (smallest residual); the pixel is
    foreground when that colour's alpha reaches min_alpha. Deciding the colour first keeps a half-covered edge
    pixel from switching to a neighbouring colour whose own alpha happens to pass the threshold.
    """
    names = list(COLORS)
    bg = background_color(arr)
    diff = arr - bg  # (H, W, 3)
    best = np.full(arr.shape[:2], np.inf)
    best_alpha = np.zeros(arr.shape[:2])
    labels = np.full(arr.shape[:2], -1, dtype=np.int64)
    for index, name in enumerate(names):
        direction = np.asarray(COLORS[name], dtype=np.float64) - bg
        norm2 = float(direction @ direction)
        if norm2 < 1e-6:  # a palette colour equal to the background cannot be seen
            continue
        alpha = diff @ direction / norm2
        residual = np.linalg.norm(diff - np.clip(alpha, 0.0, 1.0)[..., None] * direction, axis=-1)
        better = (alpha > 0) & (residual < best)
        labels[better] = index
        best[better] = residual[better]
        best_alpha[better] = alpha[better]
    labels[(best_alpha < config.min_alpha) | (best > config.max_residual)] = -1
    return labels, names


# Analytic moments of each shape filling the unit box: (area, centroid v, variance along u, variance along v).
UNIT_MOMENTS: dict[str, tuple[float, float, float, float]] = {
    "circle": (np.pi / 4, 0.5, 1 / 16, 1 / 16),
    "square": (1.0, 0.5, 1 / 12, 1 / 12),
    "triangle": (0.5, 2 / 3, 1 / 24, 1 / 18),
    "diamond": (0.5, 0.5, 1 / 24, 1 / 24),
}


@dataclass(frozen=True)
class ShapeFit:
    shape: str
    box: tuple[float, float, float, float]  # fitted box in the alpha map's pixel coordinates
    blur: float  # fitted Gaussian blur sigma in pixels
    iou: float  # soft IoU of the fitted (blurred) template with the observed alpha


BLUR_GRID = (0.0, 0.35, 0.7, 1.0, 1.4, 2.0)  # in pixels of a 64 px image; scaled with the image size
SIDE_GRID = (0.88, 0.94, 1.0, 1.06, 1.12)


def _soft_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = float(np.maximum(a, b).sum())
    return float(np.minimum(a, b).sum()) / union if union else 0.0


def fit_shape(alpha: np.ndarray, shape: str, image_size: int = 64, deadzone: float = 0.0) -> ShapeFit:
    """Fit `shape` in a square box, blurred by a Gaussian, to a soft alpha map; measure the fit by soft IoU.

    Every box of the world is square. The centre comes from the alpha centroid (shifted by the shape's own
    centroid), the side first from the alpha mass, then both side and blur from a small grid search maximising
    soft IoU (sum of minima over sum of maxima) between `alpha` and the template's pixel coverage. `deadzone` zeroes
    values at or below the noise level, in the observation and in every template alike.
    """
    area, centroid_v, _, _ = UNIT_MOMENTS[shape]
    height, width = alpha.shape
    mass = float(alpha.sum())
    if mass <= 0:
        return ShapeFit(shape, (0.0, 0.0, 0.0, 0.0), 0.0, 0.0)
    xs, ys = np.arange(width) + 0.5, np.arange(height) + 0.5
    cx = float(alpha.sum(axis=0) @ xs) / mass
    cy = float(alpha.sum(axis=1) @ ys) / mass
    side0 = float(np.sqrt(mass / area))
    best = ShapeFit(shape, (0.0, 0.0, 0.0, 0.0), 0.0, -1.0)
    for factor in SIDE_GRID:
        side = side0 * factor
        box = (cx - side / 2, cy - centroid_v * side, cx + side / 2, cy + (1 - centroid_v) * side)
        crisp = coverage(shape, box, height, width)
        for blur64 in BLUR_GRID:
            blur = blur64 * image_size / 64
            template = ndimage.gaussian_filter(crisp, blur, mode="constant") if blur > 0 else crisp
            if deadzone > 0:
                template = np.where(template > deadzone, template, 0.0)
            iou = _soft_iou(alpha, template)
            if iou > best.iou:
                best = ShapeFit(shape, box, blur, iou)
    return best


def classify_alpha(
    alpha: np.ndarray, config: DetectorConfig = DetectorConfig(), image_size: int = 64, deadzone: float = 0.0
) -> tuple[ShapeFit, float, list[ShapeFit]]:
    """Best shape fit, its score in [0, 1], and every shape's fit (best first), for one object's alpha map."""
    fits = sorted((fit_shape(alpha, s, image_size, deadzone) for s in SHAPES), key=lambda f: -f.iou)
    best, second = fits[0], fits[1].iou if len(fits) > 1 else 0.0
    fit = np.clip((best.iou - config.iou_zero) / (config.iou_full - config.iou_zero), 0.0, 1.0)
    ratio = (1.0 - best.iou) / max(1.0 - second, 1e-9)
    clarity = np.clip((1.0 - ratio) / (1.0 - config.clear_ratio), 0.0, 1.0)
    return best, float(fit * clarity), fits


def _objects(labels: np.ndarray, config: DetectorConfig, min_area: float) -> list[tuple[np.ndarray, int]]:
    """(mask, colour index) for every object region.

    A component with one dominant colour is one object. One with several large colour shares is split by colour
    only when the split is coherent (solid pieces, which survive a 3x3 opening, of at least `min_area` hold 70% of
    its pixels: touching objects); speckled colour (a muddy object whose pixels hesitate between two palette
    colours) stays one object of its majority colour.
    """
    structure = np.ones((3, 3), dtype=bool)
    components, _ = ndimage.label(labels >= 0, structure=structure)
    regions: list[tuple[np.ndarray, int]] = []

    def add(window: tuple[slice, slice], local: np.ndarray, colour: int) -> None:
        region = np.zeros(labels.shape, dtype=bool)
        region[window] = local
        regions.append((region, colour))

    for index, window in enumerate(ndimage.find_objects(components), start=1):
        if window is None:
            continue
        local = components[window] == index
        colours = labels[window][local]
        shares = np.bincount(colours) / colours.size
        major = np.flatnonzero(shares >= config.split_share)
        pieces: list[tuple[np.ndarray, int]] = []
        solid_area = 0
        if len(major) > 1:
            for colour in major:
                own = local & (labels[window] == colour)
                opened = ndimage.binary_opening(own)
                labelled, _ = ndimage.label(own, structure=structure)
                for k in np.unique(labelled[opened]):
                    piece = labelled == k
                    if np.count_nonzero(piece) >= min_area:
                        pieces.append((piece, int(colour)))
                        solid_area += np.count_nonzero(piece & opened)
        if pieces and solid_area >= 0.7 * colours.size:
            for piece, colour in pieces:
                add(window, piece, colour)
        else:
            add(window, local, int(np.argmax(shares)))
    return regions


def object_alpha(
    arr: np.ndarray, background: np.ndarray, colour: str, region: np.ndarray, others: np.ndarray, pad: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The object's soft alpha in its padded box (pixels of other objects zeroed), and the box's top-left corner."""
    ys, xs = np.nonzero(region)
    y0, x0 = max(int(ys.min()) - pad, 0), max(int(xs.min()) - pad, 0)
    y1, x1 = min(int(ys.max()) + 1 + pad, arr.shape[0]), min(int(xs.max()) + 1 + pad, arr.shape[1])
    direction = np.asarray(COLORS[colour], dtype=np.float64) - background
    alpha = np.clip((arr[y0:y1, x0:x1] - background) @ direction / float(direction @ direction), 0.0, 1.0)
    alpha[others[y0:y1, x0:x1] & ~region[y0:y1, x0:x1]] = 0.0
    return alpha, (x0, y0)


def noise_deadzone(arr: np.ndarray, background: np.ndarray, colour: str) -> float:
    """Three robust standard deviations of the background's alpha towards `colour` (0 for a clean image)."""
    direction = np.asarray(COLORS[colour], dtype=np.float64) - background
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    alpha = (border - background) @ direction / float(direction @ direction)
    spread = 1.4826 * float(np.median(np.abs(alpha - np.median(alpha))))
    return min(3 * spread, 0.3)


def detect(image: Image.Image | np.ndarray, config: DetectorConfig = DetectorConfig()) -> list[Detection]:
    """Every shape in an RGB image, best score first, with its colour, fitted box (pixels) and mask."""
    arr = _as_array(image)
    labels, names = color_labels(arr, config)
    background = background_color(arr)
    min_area = max(config.min_area_px, config.min_area_fraction * arr.shape[0] * arr.shape[1])
    regions = [(ndimage.binary_fill_holes(r), c) for r, c in _objects(labels, config, min_area)]
    regions = [(r, c) for r, c in regions if np.count_nonzero(r) >= min_area]
    foreground = labels >= 0
    found: list[Detection] = []
    for region, colour in regions:
        # Other objects' pixels and their 1-pixel rims never count towards this object's alpha.
        others = ndimage.binary_dilation(foreground & ~region, iterations=1)
        alpha, (ox, oy) = object_alpha(arr, background, names[colour], region, others, config.pad_px)
        deadzone = noise_deadzone(arr, background, names[colour])
        alpha = np.where(alpha > deadzone, alpha, 0.0)
        best, score, _ = classify_alpha(alpha, config, max(arr.shape[:2]), deadzone)
        x0, y0, x1, y1 = best.box
        box = (x0 + ox, y0 + oy, x1 + ox, y1 + oy)
        found.append(Detection(best.shape, score, box, region, names[colour]))
    return sorted(found, key=lambda d: -d.score)

