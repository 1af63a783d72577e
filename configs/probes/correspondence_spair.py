_base_ = ['./_base_/correspondence.py']
