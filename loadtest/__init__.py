"""Load tests: Locust journeys through the ALB routes, scenario presets, runner, experiments, reports."""
