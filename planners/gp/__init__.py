"""The BoTorch planner's Gaussian processes: how they are fitted (:class:`~planners.gp.fitting.GPFitting`, on a
schedule, with a low-noise fit that stops once settled) and what a fitted one says (:mod:`planners.gp.reading`).

Others may use :class:`~planners.gp.fitting.GPFitting`, the functions of :mod:`planners.gp.reading` and
:func:`~planners.gp.expected_warnings.expected_warnings_logged`; :mod:`planners.gp.low_noise` is this package's own.
"""
