from django.db import models


class Note(models.Model):
    token = models.CharField(max_length=40, unique=True)
    text = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.token
