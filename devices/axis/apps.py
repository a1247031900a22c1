from django.apps import AppConfig


class AxisConfig(AppConfig):
    name = "devices.axis"
    label = "axis"
    verbose_name = "Axis body worn (content destination)"
