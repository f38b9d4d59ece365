"""A small cello_twisted app: ``python examples/hello.py`` serves it on http://127.0.0.1:8000."""

from cello_twisted import App

app = App()


@app.get("/")
def hello(request):
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
def get_user(request):
    return {"id": request.params["id"]}


@app.post("/echo")
def echo(request):
    return request.json()


if __name__ == "__main__":
    app.run()
