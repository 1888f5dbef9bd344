"""Training the sample demand forecaster and exporting it to ONNX (the ``train`` extra).

Not part of the model server: the server image carries neither scikit-learn nor this
package's dependencies. The one thing shared with the server is the metadata written into
the model (`model_server.modelmeta`), which the server reads.
"""
