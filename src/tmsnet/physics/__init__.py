"""TMS physics: coil models, the sphere-model E-field, coil metrics, placement and dose."""
