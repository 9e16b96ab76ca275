from django.urls import path

from homes import member_views, views

app_name = "homes"

urlpatterns = [
    path("", member_views.dashboard, name="home"),
    path("offers/", member_views.offers, name="offers"),
    path("offers/<int:pk>/", member_views.offer_detail, name="offer"),
    path("offers/<int:pk>/save/", member_views.offer_save_view, name="offer-save"),
    path("offers/<int:pk>/select/", member_views.offer_select_view, name="offer-select"),
    path("enroll/", member_views.enroll, name="enroll"),
    path("no-home/", member_views.no_home, name="no-home"),
    path("tile/", member_views.tile, name="tile"),
    path("login/", views.login, name="login"),
    path("login/<str:token>/", views.magic_link, name="magic-link"),
    path("launch/", views.launch, name="launch"),
    path("visit/<str:token>/", views.visit, name="visit"),
    path("logout/", views.logout, name="logout"),
]
