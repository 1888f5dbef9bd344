"""The step program a rollout walks: the canary's own steps, or blue-green's fixed ones.

Blue-green is written as steps too, so that both strategies share one executor, one
step index in status and one readable progress line:

| blue-green spec                              | steps                                   |
|----------------------------------------------|-----------------------------------------|
| (always)                                     | Preview                                 |
| prePromotionAnalysis: {templates: [a]}       | Analysis(a)                             |
| autoPromotion: false                         | Pause() (until promoted)                |
| autoPromotionSeconds: 60                     | Pause(60) (promotes by itself after 60 s) |
| (always)                                     | Switch                                  |
| postPromotionAnalysis: {templates: [b]}      | Analysis(b)                             |
| scaleDownDelaySeconds: 30                    | Pause(30)                               |

After the last step the rollout promotes: the candidate's revision is written to the
stable Deployment and, once that is complete, the candidate goes.
"""

from __future__ import annotations

from forecastops.rollout.spec import (
    Analysis,
    BlueGreenSpec,
    Pause,
    Preview,
    RolloutSpec,
    SetWeight,
    Step,
    Strategy,
    Switch,
)


def steps_for(spec: RolloutSpec) -> tuple[Step, ...]:
    if spec.strategy is Strategy.BLUE_GREEN:
        return blue_green_steps(spec.blue_green or BlueGreenSpec())
    return spec.canary.steps if spec.canary else ()


def blue_green_steps(spec: BlueGreenSpec) -> tuple[Step, ...]:
    """
    >>> blue_green_steps(BlueGreenSpec(pre_promotion=("a",), scale_down_delay_seconds=0))
    (Preview(), Analysis(templates=('a',)), Pause(seconds=None), Switch())
    """
    steps: list[Step] = [Preview()]
    if spec.pre_promotion:
        steps.append(Analysis(spec.pre_promotion))
    if spec.auto_promotion_seconds is not None:
        steps.append(Pause(spec.auto_promotion_seconds))
    elif not spec.auto_promotion:
        steps.append(Pause())
    steps.append(Switch())
    if spec.post_promotion:
        steps.append(Analysis(spec.post_promotion))
    if spec.scale_down_delay_seconds > 0:
        steps.append(Pause(spec.scale_down_delay_seconds))
    return tuple(steps)


def route_weight_before(steps: tuple[Step, ...], index: int) -> int:
    """The canary's weight once steps[:index] have run: the last SetWeight or Switch.

    >>> route_weight_before((SetWeight(10), Pause(), SetWeight(50), Pause()), 3)
    50
    """
    weight = 0
    for step in steps[:index]:
        if isinstance(step, SetWeight):
            weight = step.weight
        elif isinstance(step, Switch):
            weight = 100
    return weight


def describe(steps: tuple[Step, ...], index: int, strategy: Strategy) -> str:
    """What steps[index] does, for people: `setWeight 10`, `pause 2m`, `analysis error-rate`.

    >>> canary = (SetWeight(10), Pause(90), Analysis(("error-rate",)), Pause())
    >>> [describe(canary, i, Strategy.CANARY) for i in range(4)]
    ['setWeight 10', 'pause 1m30s', 'analysis error-rate', 'pause until promoted']
    >>> bg = blue_green_steps(BlueGreenSpec(pre_promotion=("a",), auto_promotion_seconds=60))
    >>> [describe(bg, i, Strategy.BLUE_GREEN) for i in range(len(bg))]  # doctest: +NORMALIZE_WHITESPACE
    ['scale up the preview', 'pre-promotion analysis a', 'wait for promotion (at most 1m)',
     'switch the active Service to the preview', 'scale-down delay 30s']
    """
    step = steps[index]
    if strategy is Strategy.BLUE_GREEN:
        return _describe_blue_green(step, switched=Switch() in steps[:index])
    match step:
        case SetWeight(weight=weight):
            return f"setWeight {weight}"
        case Pause(seconds=None):
            return "pause until promoted"
        case Pause(seconds=seconds):
            return f"pause {format_seconds(seconds)}"
        case Analysis(templates=templates):
            return f"analysis {', '.join(templates)}"
    return type(step).__name__


def _describe_blue_green(step: Step, *, switched: bool) -> str:
    match step:
        case Preview():
            return "scale up the preview"
        case Switch():
            return "switch the active Service to the preview"
        case Analysis(templates=templates):
            when = "post" if switched else "pre"
            return f"{when}-promotion analysis {', '.join(templates)}"
        case Pause(seconds=seconds) if switched:
            return f"scale-down delay {format_seconds(seconds or 0)}"
        case Pause(seconds=None):
            return "wait for promotion"
        case Pause(seconds=seconds):
            return f"wait for promotion (at most {format_seconds(seconds)})"
    return type(step).__name__


def format_seconds(seconds: float) -> str:
    """
    >>> format_seconds(0.5), format_seconds(45), format_seconds(3725)
    ('500ms', '45s', '1h2m5s')
    """
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{value}{unit}" for value, unit in parts if value) or "0s"
