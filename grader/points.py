"""Points per exercise: the one table the grade is computed from. Edit it to reweight."""

POINTS = {
    "extract_features": 2,
    "content_loss": 2,
    "gram_matrix": 3,
    "style_loss": 3,
    "tv_loss": 3,
    "style_transfer": 5,
    "match_color": 2,
    "luminance_only": 2,
    "loss_landscape": 3,
}

# The share of an exercise's points that its hidden checks carry; the public
# check, which students can run themselves, carries the rest.
HIDDEN_SHARE = 0.5


def split(points):
    """{'public': ..., 'hidden': ...}: how an exercise's points divide between its checks."""
    hidden = points * HIDDEN_SHARE
    return {"public": points - hidden, "hidden": hidden}
