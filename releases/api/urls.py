from django.urls import path

from releases.api import views

urlpatterns = [
    path("releases/", views.ReleasesView.as_view(), name="releases"),
    path("releases/<int:number>/", views.ReleaseDetailView.as_view(), name="release"),
]
