from django.urls import path

from calls import views

app_name = "calls"

urlpatterns = [
    path("<uuid:public_id>/recording/", views.call_recording, name="recording"),
]
