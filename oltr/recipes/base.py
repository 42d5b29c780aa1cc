"""What a stage-2 recipe is: a registered object that declares its needs and does its part of a run.

A recipe says which classifier it needs, whether it trains (the trainer runs its epochs) or is fitted
in one pass, whether it starts from the stage-1 classifier, the suffix of its run directories and its
name in the report. It checks its config, prepares the network before training, and fits when it does
not train. The CLI resolves a config's recipe once (``resolve``) and hands the object to the trainer;
the sweep and the report ask the registry (``RECIPES``) by name.

A new recipe is one file: a ``Recipe`` subclass registered with ``@register_recipe``, imported by
``oltr/recipes/__init__.py`` (or by the user's own code before the CLI runs), plus its config.
"""

from losses.registry import Registry, closest_name

from ..common.errors import ConfigError
from ..config.schema import recipe_of
from .stage1_weights import load_stage1_weights

RECIPES = Registry("stage-2 recipe", "stage-2 recipes", error=ConfigError)


def register_recipe(cls):
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    RECIPES.register(cls.name, cls())
    return cls


class Recipe:
    """The defaults: a stage-1 run, or a stage-2 run that starts from stage 1 as its config says."""

    name = None  # training_opt.recipe; None: a stage-1 run
    order = 100  # where its rows come in the report (and its name in listings); OLTR's is 0
    label = None  # how the report names its rows after the loss ("cRT": "CE + cRT"); None: "OLTR + <loss>"
    classifier = None  # the networks.classifier.type it needs; None: the config's choice
    trains = True  # the trainer runs its epochs; False: ``fit`` computes the classifier in one pass
    uses_stage1_classifier = False  # starts from the stage-1 classifier's weights
    decoupled = False  # needs a finished stage-1 run and keeps its feature model as it is

    @property
    def run_dir_suffix(self):
        """What the sweep appends to ``stage2_<loss>`` for this recipe's runs."""
        return f"_{self.name}"

    def check(self, config, where):
        """Rules between keys this recipe needs; a ConfigError naming the key and the fix."""
        training = config["training_opt"]
        if training["recipe"] is not None and training["stage"] != 2:
            raise ConfigError(
                f"{where}: training_opt.recipe {training['recipe']!r} is a stage-2 recipe but "
                f"training_opt.stage is {training['stage']}; set training_opt.stage to 2 "
                f"(config/recipes/stage_2_{training['recipe']}.py does)"
            )

    def prepare_network(self, network, config):
        """The network to train, with the stage-1 weights its config asks for; returns (network, report lines)."""
        return network, load_stage1_weights(network, config)

    def wants_class_means(self, config):
        """True: the run computes the class means of the training features (test-time transforms, one
        pass) after ``prepare_network`` and hands them to ``init_classifier``."""
        return False

    def init_classifier(self, network, class_means):
        """Start the classifier from the class means (C x D) when ``wants_class_means``; returns a log line."""
        raise NotImplementedError(f"the {self.name} recipe does not start from class means")

    def fit(self, config, ctx, echo=True):
        """Fit the classifier without training and write the run directory (recipes with ``trains = False``)."""
        raise NotImplementedError(f"the {self.name} recipe trains; the trainer runs it")


STAGE_ONE = Recipe()


def recipe_names():
    """The registered recipes, in the report's order."""
    return sorted(RECIPES.names(), key=lambda name: (RECIPES.get(name).order, name))


def get_recipe(name):
    """The recipe registered as ``name``: a ConfigError naming the known ones (and the closest) otherwise."""
    return RECIPES.get(name)


def resolve(config, where="config"):
    """The recipe of a validated config (``STAGE_ONE`` for a stage-1 run), its rules checked."""
    name = recipe_of(config)
    if name is not None and name not in RECIPES:
        names = recipe_names()
        close = closest_name(name, names)
        raise ConfigError(
            f"{where}: training_opt.recipe must be one of {', '.join(map(repr, names))}, got {name!r}"
            + (f" (did you mean {close!r}?)" if close else "")
        )
    recipe = STAGE_ONE if name is None else RECIPES.get(name)
    recipe.check(config, where)
    return recipe
