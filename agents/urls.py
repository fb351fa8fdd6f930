from django.urls import path

from agents import views

app_name = "agents"

urlpatterns = [
    path("", views.agent_list, name="list"),
    path("<slug:slug>/chat/", views.chat, name="chat"),
]
