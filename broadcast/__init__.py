"""Broadcasts: scheduler, priority and preemption, quiet hours, delivery reports, audit."""
