"""Points per exercise, and the file each exercise lives in: the tables the grade is computed from."""

# file -> {exercise: points}; edit the points to reweight.
FILES = {
    "style_transfer.py": {
        "extract_features": 2,
        "content_loss": 2,
        "gram_matrix": 3,
        "style_loss": 3,
        "tv_loss": 3,
        "style_transfer": 5,
        "match_color": 2,
        "luminance_only": 2,
        "loss_landscape": 3,
    },
    "fast_transfer.py": {
        "conv_layer": 2,
        "conditional_instance_norm": 3,
        "residual_block": 2,
        "transformer_net": 3,
        "perceptual_loss": 3,
        "train_step": 3,
    },
}
POINTS = {exercise: points for exercises in FILES.values() for exercise, points in exercises.items()}
FILE_OF = {exercise: file for file, exercises in FILES.items() for exercise in exercises}

# The share of an exercise's points that its hidden checks carry; the public
# check, which students can run themselves, carries the rest.
HIDDEN_SHARE = 0.5


def split(points):
    """{'public': ..., 'hidden': ...}: how an exercise's points divide between its checks."""
    hidden = points * HIDDEN_SHARE
    return {"public": points - hidden, "hidden": hidden}
