"""The engine, private: the queue, the model runner, worker processes and the execution switches.

Nothing here is public API; :class:`~instructor_integrations.encoder.InstructorEncoder` is the engine's
face. The modules: ``scheduler`` (one queue per encoder, who runs the forward passes), ``runner``
(loading and running planned batches), ``pool`` (worker processes), ``runtime`` (device and dtype
plans), ``cpu`` (the opt-in process settings), ``attention``, ``t5`` and ``cpu_attention``
(attention switches). See docs/architecture.md.
"""
