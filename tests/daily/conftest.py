from ..dashboard.fixtures import make_camera, make_recording, make_session, other_org  # noqa: F401  (fixtures)
