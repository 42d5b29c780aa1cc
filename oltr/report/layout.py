"""What Tables 3-4 of the cyclical focal loss paper show: their columns, their rows, their numbers.

Rows are OLTR, OLTR + FL, + ASL, + CFL, + CASL (then any other loss as "OLTR + <NAME>"), then the
decoupled recipes, named by loss and recipe ("CE + cRT", "Balanced Softmax + tau-norm");
columns are closed-set many/medium/few/average top-1 and open-set many/medium/few top-1
and F-measure, then the open-set AUROC of the max softmax probability (which the paper does not
report). The paper's published rows are here too, for ImageNet-LT and Places-LT.
"""

import re

from ..recipes import RECIPES

# Row order and names of Tables 3-4; other losses follow as "OLTR + <NAME>".
LOSS_ORDER = ("softmax", "focal", "asl", "cfl", "casl")
LOSS_LABELS = {"softmax": "OLTR", "focal": "OLTR + FL", "asl": "OLTR + ASL", "cfl": "OLTR + CFL", "casl": "OLTR + CASL"}

# (key, header, setting, results key, percent?) -- accuracies shown in %, F-measure as is.
COLUMNS = (
    ("closed_many", "Closed many", "closed", "many_shot_top1", True),
    ("closed_medium", "Closed medium", "closed", "medium_shot_top1", True),
    ("closed_few", "Closed few", "closed", "few_shot_top1", True),
    ("closed_average", "Closed avg", "closed", "overall_top1", True),
    ("open_many", "Open many", "open", "many_shot_top1", True),
    ("open_medium", "Open medium", "open", "medium_shot_top1", True),
    ("open_few", "Open few", "open", "few_shot_top1", True),
    ("open_f_measure", "Open F", "open", "f_measure", False),
    ("open_auroc", "Open AUROC", "open", "open_auroc", True),  # OLTR's score (msp); not in the paper
)


def _paper_table(number, name, *rows):
    """One of the paper's tables: where it comes from, and one row per loss of LOSS_ORDER in COLUMNS order."""
    return {"source": f"Table {number} of the cyclical focal loss paper ({name})", "rows": dict(zip(LOSS_ORDER, rows))}


# Published numbers of the cyclical focal loss paper (Smith 2022). Accuracies in %, F-measure in [0, 1];
# the first eight COLUMNS (the paper has no AUROC).
PUBLISHED = {
    "ImageNet_LT": _paper_table(
        3,
        "ImageNet-LT",
        (43.2, 35.1, 18.5, 32.3, 41.9, 33.9, 17.4, 0.474),
        (46.7, 36.5, 16.0, 33.1, 45.2, 34.8, 15.1, 0.446),
        (45.8, 37.6, 18.5, 33.9, 44.2, 36.3, 17.5, 0.450),
        (42.6, 37.7, 23.3, 34.5, 40.0, 35.4, 21.7, 0.445),
        (42.5, 37.4, 22.8, 34.2, 39.8, 35.1, 21.2, 0.441),
    ),
    "Places_LT": _paper_table(
        4,
        "Places-LT",
        (44.7, 37.0, 25.3, 35.9, 44.6, 36.8, 25.2, 0.464),
        (43.4, 39.7, 27.1, 36.7, 43.3, 39.4, 26.8, 0.493),
        (44.4, 39.9, 28.4, 37.6, 44.2, 39.5, 27.9, 0.499),
        (43.0, 40.7, 30.8, 38.2, 42.5, 40.2, 30.0, 0.502),
        (43.7, 39.8, 31.9, 38.5, 43.4, 39.3, 31.3, 0.503),
    ),
}


# How a loss is named beside a decoupled recipe (and in "OLTR + <NAME>" for the losses not in Tables 3-4).
LOSS_NAMES = {
    "softmax": "CE",
    "focal": "FL",
    "asl": "ASL",
    "cfl": "CFL",
    "casl": "CASL",
    "balanced_softmax": "Balanced Softmax",
    "logit_adjusted": "Logit Adjusted",
    "ldam": "LDAM",
    "seesaw": "Seesaw",
    "cb_softmax": "CB Softmax",
    "cb_sigmoid": "CB Sigmoid",
    "cb_focal": "CB Focal",
    "efl": "EFL",
}


def loss_name(loss):
    """ "CE" for softmax, "Balanced Softmax" for balanced_softmax, "FOO" for an unlisted foo."""
    return LOSS_NAMES.get(loss, loss.upper())


def loss_label(loss):
    """The row name of a loss: "OLTR + CFL" for cfl, "OLTR + Balanced Softmax", "OLTR + FOO" for an unlisted foo."""
    return LOSS_LABELS.get(loss, f"OLTR + {loss_name(loss)}")


def table_recipe(result):
    """The recipe a results dict belongs to in the table: None for the meta-embedding (or no recipe recorded)."""
    recipe = result.get("recipe")
    return None if recipe in (None, "meta_embedding") else str(recipe)


def method_label(loss, recipe):
    """A row's method: loss_label for the meta-embedding, "<loss name> + <recipe>" for a decoupled recipe."""
    if recipe is None:
        return loss_label(loss)
    label = RECIPES.get(recipe).label if recipe in RECIPES else None
    return f"{loss_name(loss)} + {label or recipe}"


def recipe_sort_key(recipe):
    """Rows in the recipes' order (oltr.recipes): the meta-embedding's (None) first, unknown names last."""
    if recipe is None:
        return (-1, "")
    return (RECIPES.get(recipe).order, str(recipe)) if recipe in RECIPES else (float("inf"), str(recipe))


def row_label(loss, stage, several_stages, recipe=None):
    """A row's name (method_label), with its stage when the table holds more than one stage."""
    return method_label(loss, recipe) + (f" (stage {stage})" if several_stages and stage and recipe is None else "")


def loss_sort_key(loss):
    """Table order: the paper's losses first, in its order, then the others by name."""
    return (LOSS_ORDER.index(loss), "") if loss in LOSS_ORDER else (len(LOSS_ORDER), loss)


def published_for(dataset):
    """The paper's rows for a dataset name, tolerant of 'ImageNet-LT' vs 'ImageNet_LT'; None if it has none."""
    wanted = re.sub(r"[^a-z0-9]", "", dataset.lower())
    for name, table in PUBLISHED.items():
        if re.sub(r"[^a-z0-9]", "", name.lower()) == wanted:
            return table
    return None
