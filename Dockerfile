# callfloor serve, as docker-compose.yml runs it (its configuration is mounted at
# /etc/callfloor/callfloor.toml; the secrets it names as "env:NAME" come from the
# environment). Only pyproject.toml, README.md (the package's readme) and the package
# are copied: .dockerignore keeps local builds (make native's *.so) out of the image.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY callfloor ./callfloor
RUN pip install --no-cache-dir . \
    && useradd --system --no-create-home --uid 10001 callfloor
# State lives in the store (redis:// in compose), nothing on the container's disk.
USER callfloor
EXPOSE 8080
# SIGTERM (docker stop) stops it like Ctrl-C: sources end, the final checkpoint is written.
ENTRYPOINT ["callfloor"]
CMD ["serve", "--config", "/etc/callfloor/callfloor.toml", "--host", "0.0.0.0"]
