FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY callfloor ./callfloor
RUN pip install --no-cache-dir .
EXPOSE 8080
ENTRYPOINT ["callfloor"]
CMD ["serve", "--config", "/etc/callfloor/callfloor.toml", "--host", "0.0.0.0"]
