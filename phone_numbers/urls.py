from django.urls import path

from phone_numbers import views

app_name = "phone_numbers"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
]
