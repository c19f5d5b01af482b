"""From a template target to the treatment room: native space, scalp, exports, plan."""
