"""Ray Data sources, datasets on disk, and the simulators of the model family's tasks."""
