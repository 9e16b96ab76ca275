from django.urls import path

from homes import views

app_name = "homes"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login, name="login"),
    path("login/<str:token>/", views.magic_link, name="magic-link"),
    path("launch/", views.launch, name="launch"),
    path("visit/<str:token>/", views.visit, name="visit"),
    path("logout/", views.logout, name="logout"),
]
