"""The gateway's routes: :mod:`.inference` (predict, models, health), :mod:`.session` (login,
logout, MFA enrolment; on both listeners) and :mod:`.admin` (the admin listener)."""
