"""Locust's fastest user class hammering one URL with no wait, for bench/compare.py."""

from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser


class Hammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def small(self):
        self.client.get("/small.txt")
