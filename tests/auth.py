"""Signing test clients in the way the application requires (password, then TOTP for some roles)."""


def sign_in(client, user):
    """Log ``client`` in as ``user``; for roles that need a second factor, as after entering the code."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.second_factor import SECOND_FACTOR_ROLES

    client.force_login(user)
    if user.role in SECOND_FACTOR_ROLES:
        device = (TOTPDevice.objects.filter(user=user, confirmed=True).first()
                  or TOTPDevice.objects.create(user=user, name="test", confirmed=True))
        session = client.session
        session["otp_device_id"] = device.persistent_id
        session.save()
    return client
