from django.urls import path

from homes import appointment_views, member_views, views

app_name = "homes"

urlpatterns = [
    path("", member_views.dashboard, name="home"),
    path("offers/", member_views.offers, name="offers"),
    path("offers/<int:pk>/", member_views.offer_detail, name="offer"),
    path("offers/<int:pk>/save/", member_views.offer_save_view, name="offer-save"),
    path("offers/<int:pk>/select/", member_views.offer_select_view, name="offer-select"),
    path("appointments/", appointment_views.appointments, name="appointments"),
    path("appointments/book/", appointment_views.book, name="appointment-book"),
    path("appointments/<int:pk>/", appointment_views.appointment_detail, name="appointment"),
    path(
        "appointments/<int:pk>/move/",
        appointment_views.appointment_reschedule_view,
        name="appointment-reschedule",
    ),
    path(
        "appointments/<int:pk>/cancel/",
        appointment_views.appointment_cancel_view,
        name="appointment-cancel",
    ),
    path(
        "appointments/<int:pk>/invitation.ics",
        appointment_views.appointment_invitation,
        name="appointment-invitation",
    ),
    path("enroll/", member_views.enroll, name="enroll"),
    path("no-home/", member_views.no_home, name="no-home"),
    path("tile/", member_views.tile, name="tile"),
    path("tile/sign-in/<str:token>/", views.tile_sign_in, name="tile-sign-in"),
    path("login/", views.login, name="login"),
    path("login/<str:token>/", views.magic_link, name="magic-link"),
    path("launch/", views.launch, name="launch"),
    path("visit/<str:token>/", views.visit, name="visit"),
    path("logout/", views.logout, name="logout"),
]
