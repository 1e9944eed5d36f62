"""Android-only helpers: runtime permissions, vibration, private storage.

Imported only when Kivy reports platform == "android" (pyjnius and the
python-for-android `android` module exist only there)."""

import logging

from android.permissions import Permission, request_permissions  # p4a module: Android only
from jnius import autoclass, cast  # pyjnius: Android only

log = logging.getLogger(__name__)

_VERSION = autoclass("android.os.Build$VERSION")
_Context = autoclass("android.content.Context")
_PythonActivity = autoclass("org.kivy.android.PythonActivity")


def sdk_int():
    return _VERSION.SDK_INT


def needed_permissions(sdk=None):
    """What to ask for on this Android version: BLUETOOTH_SCAN and
    BLUETOOTH_CONNECT from Android 12 (API 31); before that BLE scanning
    needs ACCESS_FINE_LOCATION instead.  Android 13+ (API 33) also needs
    POST_NOTIFICATIONS for alarm notifications."""
    sdk = sdk_int() if sdk is None else sdk
    if sdk >= 31:
        perms = ["android.permission.BLUETOOTH_SCAN", "android.permission.BLUETOOTH_CONNECT"]
    else:
        perms = [Permission.ACCESS_FINE_LOCATION]
    if sdk >= 33:
        perms.append("android.permission.POST_NOTIFICATIONS")
    return perms


def ask_permissions(callback=None):
    """Ask at start-up (not at the first scan): the officer grants once, before
    the first person walks up, rather than mid-screening."""

    def done(permissions, grants):
        missing = [p for p, g in zip(permissions, grants, strict=False) if not g]
        if missing:
            log.warning("permissions refused: %s (scanning or alerts will not work)", ", ".join(missing))
        if callback is not None:
            callback(not missing)

    request_permissions(needed_permissions(), done)


def _vibrator():
    activity = _PythonActivity.mActivity
    if sdk_int() >= 31:
        manager = cast("android.os.VibratorManager", activity.getSystemService(_Context.VIBRATOR_MANAGER_SERVICE))
        return manager.getDefaultVibrator()
    return cast("android.os.Vibrator", activity.getSystemService(_Context.VIBRATOR_SERVICE))


def vibrate(pattern_ms):
    """Off/on pattern in ms, played once (needs the VIBRATE permission)."""
    try:
        v = _vibrator()
        if sdk_int() >= 26:
            effect = autoclass("android.os.VibrationEffect").createWaveform(pattern_ms, -1)
            v.vibrate(effect)
        else:
            v.vibrate(pattern_ms, -1)
    except Exception as e:  # no vibrator (tablet) must not break the alarm
        log.warning("vibration unavailable: %s", e)


def cancel_vibration():
    try:
        _vibrator().cancel()
    except Exception as e:
        log.debug("vibration cancel: %s", e)


def notify(title, text, channel_id="screening-alarms"):
    """A heads-up notification, for the phone in a pocket.  Only the outcome
    and the advice: no temperature on a lock screen."""
    try:
        activity = _PythonActivity.mActivity
        jstr = autoclass("java.lang.String")
        manager_cls = autoclass("android.app.NotificationManager")
        manager = cast("android.app.NotificationManager", activity.getSystemService(_Context.NOTIFICATION_SERVICE))
        builder_cls = autoclass("android.app.Notification$Builder")
        if sdk_int() >= 26:
            channel = autoclass("android.app.NotificationChannel")(
                channel_id, jstr("Screening alarms"), manager_cls.IMPORTANCE_HIGH
            )
            manager.createNotificationChannel(channel)
            builder = builder_cls(activity, channel_id)
        else:
            builder = builder_cls(activity)
        builder.setContentTitle(jstr(title))
        builder.setContentText(jstr(text))
        builder.setSmallIcon(activity.getApplicationInfo().icon)
        builder.setAutoCancel(True)
        manager.notify(1, builder.build())
    except Exception as e:  # refused POST_NOTIFICATIONS: the banner and sound remain
        log.warning("notification unavailable: %s", e)


def app_storage_path():
    """The app's private directory (not readable by other apps): store and settings live here."""
    from android.storage import app_storage_path as path

    return path()
