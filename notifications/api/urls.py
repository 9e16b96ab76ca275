from django.urls import path

from notifications.api import views

urlpatterns = [
    path("deliveries/", views.DeliveriesView.as_view(), name="deliveries"),
    path("deliveries/<int:pk>/", views.DeliveryDetailView.as_view(), name="delivery"),
]
